"""The JSON API: one module per resource, each a flask-smorest blueprint."""
