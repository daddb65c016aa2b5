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
