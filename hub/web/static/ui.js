// berth hub: the only script. Pages work without it; it adds copy buttons,
// moves focus to a form's error summary so it is read out first, and keeps
// a running job's page up to date.
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
  var job = document.getElementById("job");
  if (job && job.hasAttribute("data-live")) {
    var refresh = function () {
      fetch(location.href, {credentials: "same-origin"}).then(function (r) {
        return r.text();
      }).then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("job");
        if (!next) {
          return;
        }
        job.innerHTML = next.innerHTML;
        if (next.hasAttribute("data-live")) {
          setTimeout(refresh, 1000);
        } else {
          job.removeAttribute("data-live");
        }
      }, function () {
        setTimeout(refresh, 5000);
      });
    };
    setTimeout(refresh, 1000);
  }
});
