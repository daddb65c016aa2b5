"""The transferviz dashboard: ``dashboard.app.create_app(cache_dir)``; ``python -m dashboard``;
``gunicorn dashboard.wsgi:server``.

Shape: ``layouts/<view>.py`` holds a view's ids and initial tree, ``callbacks/<view>.py`` its
``register(app, cache)`` and thin controllers, and ``dashboard/views/<view>/`` everything pure
about it (its slice of the cache, its figures, its run-time markup). ``docs/architecture.md``
has the map and the recipes.
"""
