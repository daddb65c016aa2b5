"""Dash layouts: one module per view holding its components and their ids."""
