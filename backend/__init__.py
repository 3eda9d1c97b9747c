"""care-companion backend: the Flask API, domain models, access policy and CLI."""
