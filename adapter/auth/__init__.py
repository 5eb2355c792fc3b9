"""Delegated authentication (front-proxy certificate, client certificate, TokenReview) and authorization
(SubjectAccessReview), as kube-apiserver's aggregated API servers do it."""
