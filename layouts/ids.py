"""Component ids shared between views (each view keeps its own ids in its module)."""

URL = "url"                      # dcc.Location: the query string holds the shareable state
NOTICE = "url-notice"            # alert shown when a link carried unknown or out-of-range values
SELECTED_CLASS = "sel-class"     # dcc.Store: int class index, the class selected across views
TABS = "main-tabs"
FOCUS = "focus-instance"         # dcc.Store: int instance id under inspection (image query, detail card) or None
HIGHLIGHT = "highlight-instances"  # dcc.Store: list of instance ids the find box matched (every map rings them) or None
FIND = "find-instance"           # the page header's find box: an instance id or a class name
FIND_MESSAGE = "find-message"    # one line under it: how many instances it matched, or why none
POOL = "image-pool"              # dcc.Store: list of instance ids, oldest first, at most dashboard.pool.POOL_SIZE

# Tab values of layouts/page.py: views on a tab that is not shown yet send nothing until it opens.
TAB_ANALYSIS = "analysis"
TAB_DIAGNOSIS = "diagnosis"
TAB_TIMELINE = "timeline"
TAB_CHANGE = "change"
TAB_PREVIEW = "preview"
