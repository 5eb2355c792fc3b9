"""The custom.metrics.k8s.io HTTP surface: routes, discovery, OpenAPI and Status errors."""
