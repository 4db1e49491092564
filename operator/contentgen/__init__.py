"""contentgen: a Kubernetes operator for AI content generation."""

__version__ = "0.1.0"
