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

  // Referral Partner Defaults: "The chosen parent" only matters with "One chosen partner";
  // hide it otherwise (the server ignores it then too).
  function showChosenParent() {
    var field = document.getElementById("field-signup_parent_partner");
    var chosen = document.querySelector('input[name="signup_parent"]:checked');
    if (!field || !chosen) {
      return;
    }
    field.hidden = chosen.value !== "fixed";
  }

  document.addEventListener("change", function (event) {
    if (event.target.name === "tracking_method") {
      muteIpAddress();
    }
    if (event.target.name === "signup_parent") {
      showChosenParent();
    }
  });
  document.addEventListener("DOMContentLoaded", muteIpAddress);
  document.addEventListener("DOMContentLoaded", showChosenParent);

  // A form sent back with errors: the focus goes to the summary of its errors, and each of
  // the summary's links puts the focus in its field (with the field's label in view).
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector("[data-error-summary]");
    if (summary) {
      summary.focus();
    }
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-error-summary] a[href^='#']");
    if (!link) {
      return;
    }
    var input = document.getElementById(link.getAttribute("href").slice(1));
    if (input && !input.matches("input, select, textarea")) {
      input = input.querySelector("input, select, textarea"); // a list of radio buttons
    }
    if (!input) {
      return;
    }
    event.preventDefault();
    var field = input.closest(".field, .filter-field, .stacked-field") || input;
    field.scrollIntoView({ block: "center" });
    input.focus({ preventScroll: true });
  });
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
