// The review queue by keyboard. Keys act unless a text field has the focus (Esc leaves it).
// Its words come from the page (the form's data- attributes), in the reader's language.
(function () {
  "use strict";
  var form = document.getElementById("decision");
  if (!form) {
    var next = document.getElementById("next");
    document.addEventListener("keydown", function (e) {
      if (next && (e.key === "Enter" || e.key === "s")) { next.click(); }
    });
    return;
  }
  var reason = document.getElementById("reason");
  var plate = document.getElementById("plate_text");
  var hint = document.getElementById("hint");
  var sent = false;

  function submit(decision) {
    if (sent) { return; }
    if (decision === "reject" && !reason.value) {
      hint.textContent = form.dataset.needReason;
      reason.focus();
      return;
    }
    sent = true;
    document.getElementById(decision).click();
  }
  function typing(el) {
    return el && (el.tagName === "INPUT" && el.type !== "radio" && el.type !== "checkbox" || el.tagName === "TEXTAREA");
  }
  form.addEventListener("submit", function () { sent = true; });
  form.addEventListener("keydown", function (e) {
    // Enter in a text field ends the edit; it never decides by accident.
    if (e.key === "Enter" && typing(e.target)) { e.preventDefault(); e.target.blur(); }
  });
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    if (e.key === "Escape") { document.activeElement.blur(); return; }
    if (typing(document.activeElement)) { return; }
    var key = e.key.toLowerCase();
    if (key >= "1" && key <= "9") {
      var option = reason.options[parseInt(key, 10)];
      if (option) { reason.value = option.value; hint.textContent = form.dataset.picked.replace("{reason}", option.value); }
      e.preventDefault();
      return;
    }
    var radio = { y: "yes", n: "no", u: "unknown" }[key];
    if (radio) {
      form.querySelector('input[name="same_person"][value="' + radio + '"]').checked = true;
      e.preventDefault();
      return;
    }
    if (key === "a") { e.preventDefault(); submit("approve"); }
    else if (key === "f") { e.preventDefault(); submit("reject"); }
    else if (key === "p") { e.preventDefault(); plate.focus(); plate.select(); }
    else if (key === "s") { e.preventDefault(); document.getElementById("skip").click(); }
  });
})();
