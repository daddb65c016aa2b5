import time, json
from flask import send_file
from dashboard.app import create_app

def local_bs(app):
    @app.server.route("/_bs.css")
    def _bs():
        return send_file("/tmp/bsnpm/package/dist/css/bootstrap.min.css", mimetype="text/css")
    app.config.external_stylesheets = ["/_bs.css"]

def test_explore(dash_duo, demo_cache, artifacts):
    app = create_app(demo_cache.root)
    local_bs(app)
    dash_duo.start_server(app)
    dash_duo.wait_for_element("#stats-table", timeout=20)
    time.sleep(6)
    d = dash_duo.driver
    d.save_screenshot(str(artifacts / "explore_1366.png"))
    print("LOGS", dash_duo.get_logs())
    d.set_window_size(1366, 1100)
    time.sleep(2)
    d.save_screenshot(str(artifacts / "explore_1366_full.png"))
