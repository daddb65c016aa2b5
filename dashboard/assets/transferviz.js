/* The network view's layer slider: each handle's tooltip names its layer, "L3 features.0.block.1.0"
   (dcc.RangeSlider tooltip.transform = "tvLayerName"; layouts/network.py puts the analysed layers'
   module paths, in forward order, in the slider box's data-layer-names). */
window.dccFunctions = window.dccFunctions || {};
window.dccFunctions.tvLayerName = function (value) {
    var tag = "L" + value;
    try {
        var box = document.querySelector("[data-layer-names]");
        var names = box ? JSON.parse(box.getAttribute("data-layer-names")) : [];
        var name = names[Math.round(value) - 1];
        return name ? tag + " " + name : tag;
    } catch (e) {
        return tag;
    }
};

/* Saves a blob as a file named `name` (the browser's own download, from an object URL). */
window.tvSaveBlob = function (blob, name) {
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
};

/* The instance CSVs (dashboard/export.py): POSTs a view's state to its export route and saves the
   answer under the name the server gives, so the file never passes through a Dash callback. Resolves
   to {file, bytes}, or to {error} with the server's one line (a clientside callback's output). */
window.tvExport = function (url, state) {
    return fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                       body: JSON.stringify(state)})
        .then(function (r) {
            if (!r.ok) {
                return r.text().then(function (t) { return {error: (t || r.statusText).trim()}; });
            }
            var m = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
            var name = m ? m[1] : "export.csv";
            return r.blob().then(function (blob) {
                window.tvSaveBlob(blob, name);
                return {file: name, bytes: blob.size};
            });
        })
        .catch(function (e) { return {error: String(e)}; });
};

/* "Download the data as CSV" in every plot's mode bar (issue 16: any figure's data), beside the
   camera. Plotly has no such button and dcc.Graph's config cannot carry a click function, so the
   button is added to each mode bar as plotly (re)builds it (a MutationObserver), and reads what the
   figure draws (gd._fullData: typed arrays decoded, defaults applied): one row a point of every
   trace with data (x, y, z, text, hover text, customdata = instance id or class where the view
   sets one, marker colour values), one row a cell for heatmaps. tvFigureCsv(gd) is global so that
   the browser tests can read the CSV without a download. */
(function () {
    function cell(v) {
        if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) { return ""; }
        var s = Array.isArray(v) ? v.join(" ") : String(v);
        return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    }
    function list(v) {
        return v && typeof v !== "string" && typeof v.length === "number" ? v : null;
    }
    function at(v, i) {
        var a = list(v);
        return a ? a[i] : (typeof v === "string" || typeof v === "number" ? v : "");
    }
    window.tvFigureCsv = function (gd) {
        var rows = [["trace", "name", "x", "y", "z", "text", "customdata", "color"]];
        (gd._fullData || []).forEach(function (t, k) {
            if (t.visible !== true) { return; }
            var name = t.name || "trace " + k;
            var z = list(t.z);
            if (z && list(z[0])) {  // heatmap: one row a cell
                for (var i = 0; i < z.length; i++) {
                    for (var j = 0; j < z[i].length; j++) {
                        if (z[i][j] === null || z[i][j] === undefined) { continue; }
                        rows.push([k, name, at(t.x, j), at(t.y, i), z[i][j], "", "", ""]);
                    }
                }
                return;
            }
            var n = Math.max((list(t.x) || []).length, (list(t.y) || []).length);
            var color = t.marker ? t.marker.color : null;
            for (var p = 0; p < n; p++) {
                var x = at(t.x, p), y = at(t.y, p);
                if ((x === null || x === undefined) && (y === null || y === undefined)) { continue; }
                rows.push([k, name, x, y, z ? z[p] : "", at(t.text, p) || at(t.hovertext, p),
                           at(t.customdata, p), list(color) ? color[p] : ""]);
            }
        });
        return rows.map(function (r) { return r.map(cell).join(","); }).join("\n") + "\n";
    };
    function download(gd) {
        var opts = (gd._context && gd._context.toImageButtonOptions) || {};
        window.tvSaveBlob(new Blob([window.tvFigureCsv(gd)], {type: "text/csv"}), (opts.filename || "figure") + ".csv");
    }
    var ICON = '<svg viewBox="0 0 1000 1000" class="icon" height="1em" width="1em"><path d="M150 100h500l200 ' +
        '200v600h-700z M200 150v700h600v-520h-180v-180z M260 430h480v60h-480z M260 560h480v60h-480z M260 690h480v60' +
        'h-480z" fill-rule="evenodd"/></svg>';
    function addButton(bar) {
        if (bar.querySelector(".tv-csv-btn")) { return; }
        var group = document.createElement("div");
        group.className = "modebar-group";
        var btn = document.createElement("a");
        btn.className = "modebar-btn tv-csv-btn";
        btn.setAttribute("rel", "tooltip");
        btn.setAttribute("data-title", "Download the data as CSV");
        btn.setAttribute("data-gravity", "n");
        btn.innerHTML = ICON;
        btn.addEventListener("click", function () {
            var gd = bar.closest(".js-plotly-plot");
            if (gd) { download(gd); }
        });
        group.appendChild(btn);
        bar.insertBefore(group, bar.firstChild);
    }
    function scan(root) {
        (root.querySelectorAll ? root.querySelectorAll(".modebar") : []).forEach(addButton);
    }
    function start() {
        scan(document);
        new MutationObserver(function (changes) {
            changes.forEach(function (c) {
                c.addedNodes.forEach(function (node) {
                    if (node.nodeType !== 1) { return; }
                    // plotly rebuilds a mode bar's groups inside the same .modebar element
                    var bar = node.closest(".modebar");
                    if (bar) { addButton(bar); } else { scan(node); }
                });
            });
        }).observe(document.body, {childList: true, subtree: true});
    }
    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", start);
    } else {
        start();
    }
})();

/* The timeline's per-class accuracy: hovering a class's line brings it forward (thick, opaque) and
   fades the others until the mouse leaves (issue 16: at 31 classes the lines are a tangle). Plotly
   restyles in the browser: no request. The figure's own look (a selected class drawn bold) comes
   back on unhover, and with any redraw the server sends. */
(function () {
    var ID = "timeline-accuracy";
    function classTraces(gd) {
        var out = [];
        (gd.data || []).forEach(function (t, k) { if (t.meta && t.meta.role === "class") { out.push(k); } });
        return out;
    }
    function attach(gd) {
        if (gd._tvHover || typeof gd.on !== "function") { return; }
        gd._tvHover = true;
        var saved = null;
        gd.on("plotly_hover", function (ev) {
            var k = ev && ev.points && ev.points.length ? ev.points[0].curveNumber : -1;
            var traces = classTraces(gd);
            if (traces.indexOf(k) < 0) { return; }
            if (saved === null) {
                saved = traces.map(function (i) {
                    return {opacity: gd.data[i].opacity, width: (gd.data[i].line || {}).width};
                });
            }
            window.Plotly.restyle(gd, {
                opacity: traces.map(function (i) { return i === k ? 1 : 0.15; }),
                "line.width": traces.map(function (i) { return i === k ? 4 : 1.2; })
            }, traces);
        });
        gd.on("plotly_unhover", function () {
            if (saved === null) { return; }
            var traces = classTraces(gd), back = saved;
            saved = null;
            if (traces.length !== back.length) { return; }  // redrawn meanwhile: already the figure's own look
            window.Plotly.restyle(gd, {
                opacity: back.map(function (s) { return s.opacity === undefined ? 1 : s.opacity; }),
                "line.width": back.map(function (s) { return s.width === undefined ? 1.5 : s.width; })
            }, traces);
        });
    }
    function scan() {
        var box = document.getElementById(ID);
        var gd = box && box.querySelector(".js-plotly-plot");
        if (gd) { attach(gd); }
    }
    function start() {
        scan();
        new MutationObserver(scan).observe(document.body, {childList: true, subtree: true});
    }
    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", start);
    } else {
        start();
    }
})();
