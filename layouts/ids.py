"""Component ids shared between views (each view keeps its own ids in its module)."""

URL = "url"                      # dcc.Location: the query string holds the shareable state
NOTICE = "url-notice"            # alert shown when a link carried unknown or out-of-range values
SELECTED_CLASS = "sel-class"     # dcc.Store: int class index, the class selected across views
TABS = "main-tabs"
FOCUS = "focus-instance"         # dcc.Store: int instance id under inspection (image query, detail card) or None
POOL = "image-pool"              # dcc.Store: list of instance ids, oldest first, at most dashboard.pool.POOL_SIZE
