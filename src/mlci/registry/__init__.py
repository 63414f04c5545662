"""Model registries behind one Protocol (`base.Registry`)."""
