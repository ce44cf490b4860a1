"""Normwacht's services: thin shells around the pure core in `normwacht.core`."""
