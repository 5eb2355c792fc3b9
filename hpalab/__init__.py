"""The HPA lab: the Kubernetes HPA controller's decision logic, offline replays and a live watcher."""
