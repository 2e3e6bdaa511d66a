/*
 * rp.js: the referral program's script for the merchant's own pages (SPEC §9).
 * No dependencies, and it makes no requests of its own.
 *
 * A partner link (/go/...) sends the visitor to the merchant's page with ?rp_ref=<token>.
 * This script keeps that token in a first-party cookie `rp_ref` of the merchant's domain,
 * fills every form input named `rp_ref` with it (and every empty `rp_event_id` with a
 * one-time id, so a form sent twice counts once), and gives it to a checkout script as
 * `window.rp.token()`. See docs/integration.md.
 *
 *   <script src="https://partners.shop.example/static/rp.js" defer
 *           data-domain=".shop.example" data-cookie-days="90"></script>
 *
 * data-domain: the cookie's domain (default: the page's host only).
 * data-cookie-days: the cookie's life (default ten years, like the tracker's cookie of a
 * partner without cookie days; each partner's own window is applied to every event anyway).
 */
(function () {
  "use strict";

  var NAME = "rp_ref";
  var DAY = 24 * 3600;
  var TEN_YEARS = 3650;
  // A signed token: URL-safe base64 pieces joined by ':' (anything else is not ours).
  var TOKEN = /^[A-Za-z0-9_\-:.]{1,2048}$/;

  var script = document.currentScript;
  var options = (script && script.dataset) || {};

  function valid(value) {
    return typeof value === "string" && TOKEN.test(value) ? value : "";
  }

  function fromUrl() {
    try {
      return valid(new URLSearchParams(window.location.search).get(NAME));
    } catch (error) {
      return "";
    }
  }

  function fromCookie() {
    var cookies = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < cookies.length; i++) {
      if (cookies[i].indexOf(NAME + "=") === 0) {
        return valid(cookies[i].slice(NAME.length + 1));
      }
    }
    return "";
  }

  function keep(value) {
    var days = parseInt(options.cookieDays, 10);
    if (!(days > 0)) {
      days = TEN_YEARS;
    }
    var cookie = NAME + "=" + value + "; Max-Age=" + days * DAY + "; Path=/; SameSite=Lax";
    if (options.domain) {
      cookie += "; Domain=" + options.domain;
    }
    if (window.location.protocol === "https:") {
      cookie += "; Secure";
    }
    document.cookie = cookie;
  }

  function oneTimeId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    var hex = "";
    for (var i = 0; i < bytes.length; i++) {
      hex += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    }
    return hex;
  }

  var landed = fromUrl();
  if (landed) {
    keep(landed);
  }

  // The token: the cookie, or this page's own rp_ref when cookies are refused.
  function token() {
    return fromCookie() || landed;
  }

  // Fill the inputs of a form, or of every form under `root` (default: the page).
  function fill(root) {
    var scope = root || document;
    var value = token();
    var inputs = scope.querySelectorAll('input[name="rp_ref"]');
    for (var i = 0; i < inputs.length; i++) {
      if (value) {
        inputs[i].value = value;
      }
    }
    var ids = scope.querySelectorAll('input[name="rp_event_id"]');
    for (var j = 0; j < ids.length; j++) {
      if (!ids[j].value) {
        ids[j].value = oneTimeId();
      }
    }
  }

  window.rp = { token: token, fill: fill };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      fill();
    });
  } else {
    fill();
  }
  // Forms added after the page loaded are filled as they are sent.
  document.addEventListener(
    "submit",
    function (event) {
      if (event.target && event.target.querySelectorAll) {
        fill(event.target);
      }
    },
    true
  );
})();
