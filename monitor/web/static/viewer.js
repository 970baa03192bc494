// Comparison page: deep zoom of baseline and current (OpenSeadragon), swipe,
// change overlay opacity, regions that zoom. Data comes from the JSON block
// the server wrote (#viewer-data); nothing here builds HTML from strings.
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("viewer-data").textContent);
  if (typeof OpenSeadragon === "undefined") {
    return;
  }
  const sources = [data.tile_sources.baseline, data.tile_sources.current];
  if (data.tile_sources.change) sources.push(data.tile_sources.change);
  const opacityInput = document.getElementById("opacity");
  const swipeInput = document.getElementById("swipe");

  const viewer = OpenSeadragon({
    id: "viewer",
    prefixUrl: data.osd_prefix,
    drawer: "canvas",
    showNavigator: true,
    navigatorPosition: "BOTTOM_RIGHT",
    maxZoomPixelRatio: 4,
    tileSources: sources.map((src, i) => ({
      tileSource: src,
      x: 0,
      y: 0,
      width: 1,
      opacity: i === 2 ? Number(opacityInput.value) / 100 : 1,
    })),
  });
  window.monitorViewer = viewer;

  function item(i) {
    return viewer.world.getItemAt(i);
  }

  function applySwipe() {
    const current = item(1);
    if (!current) return;
    const size = current.getContentSize();
    const x = (Number(swipeInput.value) / 1000) * size.x;
    current.setClip(new OpenSeadragon.Rect(x, 0, size.x - x, size.y));
    const line = item(0).imageToViewportRectangle(x, 0, 0, size.y);
    viewer.updateOverlay(swipeLine, line);
    document.body.dataset.swipeX = String(x);
  }

  function applyOpacity() {
    const change = item(2);
    if (!change) return;
    change.setOpacity(Number(opacityInput.value) / 100);
    document.body.dataset.overlayOpacity = String(change.getOpacity());
  }

  function zoomToRegion(bbox) {
    const [x0, y0, x1, y1] = bbox;
    const pad = Math.max(x1 - x0, y1 - y0) * 0.5 + 8;
    const rect = item(0).imageToViewportRectangle(x0 - pad, y0 - pad, x1 - x0 + 2 * pad,
                                                  y1 - y0 + 2 * pad);
    viewer.viewport.fitBounds(rect);
  }

  const swipeLine = document.createElement("div");
  swipeLine.className = "swipe-line";

  viewer.addHandler("open", () => {
    viewer.addOverlay({ element: swipeLine, location: new OpenSeadragon.Rect(0, 0, 0, 1) });
    for (const region of data.regions) {
      const [x0, y0, x1, y1] = region.bbox;
      const box = document.createElement("div");
      box.className = "region-box " + region.polarity;
      box.title = "#" + region.id + " " + region.polarity;
      viewer.addOverlay({
        element: box,
        location: item(0).imageToViewportRectangle(x0, y0, x1 - x0, y1 - y0),
      });
    }
    applySwipe();
    applyOpacity();
    document.body.dataset.viewerReady = "1";
  });

  swipeInput.addEventListener("input", applySwipe);
  opacityInput.addEventListener("input", applyOpacity);
  document.getElementById("home").addEventListener("click", () => viewer.viewport.goHome());
  for (const button of document.querySelectorAll("button.region")) {
    button.addEventListener("click", () => {
      zoomToRegion(button.dataset.bbox.split(",").map(Number));
      for (const other of document.querySelectorAll("button.region.active")) {
        other.classList.remove("active");
      }
      button.classList.add("active");
    });
  }
})();
