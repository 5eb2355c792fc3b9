"""Stand-ins for libraries whose real backends need hardware or a cluster."""
