"""Domain rules that span several models, kept out of the HTTP layer."""
