"""The wire shapes, one module per resource."""
