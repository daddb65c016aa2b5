"""One package per view, named after its tab or card: ``data.py`` reads the view's slice of the
cache, ``figures.py`` builds its Plotly figures, ``markup.py`` its run-time HTML. Pure code: a
:class:`~transferviz.cache.Cache` and plain values in, data, figures or components out; no Dash
callbacks here (those are in ``callbacks/<view>.py``) and no view imports another."""
