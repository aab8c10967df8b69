// Show or hide one pipeline's boxes over the photos.
(function () {
  "use strict";
  document.querySelectorAll("[data-toggle-pipeline]").forEach(function (box) {
    box.addEventListener("change", function () {
      var name = box.getAttribute("data-toggle-pipeline");
      document.querySelectorAll('svg.overlay .pipeline[data-pipeline="' + name + '"]').forEach(function (g) {
        g.classList.toggle("hidden", !box.checked);
      });
    });
  });
})();
