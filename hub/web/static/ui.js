// berth hub: the only script. Pages work without it; it adds copy buttons
// and moves focus to a form's error summary so it is read out first.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var status = button.parentNode.querySelector(".copied");
    if (!source || !navigator.clipboard) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent).then(function () {
        if (status) {
          status.textContent = "Copied to the clipboard.";
        }
      }, function () {
        if (status) {
          status.textContent = "Copying failed: select the token and copy it by hand.";
        }
      });
    });
  });
});
