// Small page behaviours; every page works without them.
(function () {
  "use strict";

  // Copy buttons: <button data-copy="text">Copy</button>.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-http sites have no clipboard API: copy through a hidden text area.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var copied = false;
      try {
        copied = document.execCommand("copy");
      } catch (error) {
        copied = false;
      }
      document.body.removeChild(area);
      if (copied) {
        resolve();
      } else {
        reject(new Error("copy failed"));
      }
    });
  }

  function showCopied(button, label) {
    var original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = label;
    button.classList.toggle("is-copied", label === "Copied");
    window.setTimeout(function () {
      button.textContent = original;
      button.classList.remove("is-copied");
    }, 1500);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) {
      return;
    }
    copyText(button.getAttribute("data-copy")).then(
      function () { showCopied(button, "Copied"); },
      function () { showCopied(button, "Press Ctrl+C"); }
    );
  });

  // Referral Partner Defaults: "Use IP address" has no effect with "Cookies only";
  // grey it out while that method is chosen. It stays enabled so its value is kept.
  function muteIpAddress() {
    var field = document.getElementById("field-use_ip_address");
    var chosen = document.querySelector('input[name="tracking_method"]:checked');
    if (!field || !chosen) {
      return;
    }
    field.classList.toggle("is-muted", chosen.value === "cookies_only");
  }

  document.addEventListener("change", function (event) {
    if (event.target.name === "tracking_method") {
      muteIpAddress();
    }
  });
  document.addEventListener("DOMContentLoaded", muteIpAddress);
})();
