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

// Partner Center, My links: the link generator shows the URL for the chosen tracking link
// and ad code as you type (the server makes the same URL when the form is sent).
(function () {
  "use strict";

  function generatorUrl(form) {
    var urls = JSON.parse(document.getElementById(form.dataset.urls).textContent);
    var base = urls[form.elements.link.value];
    var adCode = form.elements.ad.value.trim();
    return adCode ? base + "?ad=" + encodeURIComponent(adCode) : base;
  }

  function updateGenerator(form) {
    var url = generatorUrl(form);
    form.querySelector("[data-generated-url]").value = url;
    form.querySelector("[data-generated-copy]").setAttribute("data-copy", url);
  }

  function onEdit(event) {
    var form = event.target.form;
    if (form && form.hasAttribute("data-link-generator")) {
      updateGenerator(form);
    }
  }

  document.addEventListener("input", onEdit);
  document.addEventListener("change", onEdit);
})();
