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

// Small screens (issue 20): the menu folds behind a Menu button, and a table wider than
// the screen scrolls on its own (its first column stays in view), says so, and can be
// reached and scrolled with the keyboard. Without the script the menu is simply open.
(function () {
  "use strict";

  function setUpMenu() {
    var nav = document.querySelector(".mainnav");
    var links = nav && nav.querySelector(".mainnav-links");
    if (!links) {
      return;
    }
    links.id = links.id || "main-menu";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "topbar-button menu-button";
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", links.id);
    button.textContent = "Menu";
    nav.parentNode.insertBefore(button, nav);
    nav.classList.add("is-collapsible");
    button.addEventListener("click", function () {
      var open = nav.classList.toggle("is-open");
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  function tableName(wrap) {
    var table = wrap.querySelector("table");
    var caption = table && table.querySelector("caption");
    if (caption) {
      return caption.textContent.trim();
    }
    var heading = wrap.closest("section, .card, main");
    heading = heading && heading.querySelector("h2, h1");
    return heading ? heading.textContent.trim() : "Table";
  }

  function markScrollable() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      var scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
      wrap.classList.toggle("is-scrollable", scrolls);
      if (scrolls && !wrap.hasAttribute("tabindex")) {
        wrap.setAttribute("tabindex", "0");
        wrap.dataset.madeFocusable = "1";
      }
      if (scrolls && !wrap.hasAttribute("role")) {
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", tableName(wrap));
        wrap.dataset.madeRegion = "1";
      }
      if (!scrolls && wrap.dataset.madeFocusable) {
        wrap.removeAttribute("tabindex");
        delete wrap.dataset.madeFocusable;
      }
      if (!scrolls && wrap.dataset.madeRegion) {
        wrap.removeAttribute("role");
        wrap.removeAttribute("aria-label");
        delete wrap.dataset.madeRegion;
      }
      var hint = wrap.previousElementSibling;
      if (!hint || !hint.classList.contains("scroll-hint")) {
        hint = document.createElement("p");
        hint.className = "scroll-hint";
        hint.setAttribute("aria-hidden", "true");
        hint.textContent = "More columns: scroll the table sideways \u2192";
        wrap.parentNode.insertBefore(hint, wrap);
      }
      hint.hidden = !scrolls;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpMenu();
    markScrollable();
  });
  var resizing;
  window.addEventListener("resize", function () {
    window.clearTimeout(resizing);
    resizing = window.setTimeout(markScrollable, 100);
  });
})();

// Tables edited row by row (a Django formset, templates/staff/includes/formset_table.html):
// "Add a row" copies the formset's empty row, numbered as the next form, and counts it.
(function () {
  "use strict";

  function addRow(prefix) {
    var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
    var most = document.getElementById("id_" + prefix + "-MAX_NUM_FORMS");
    var template = document.getElementById(prefix + "-empty-row");
    var rows = document.getElementById(prefix + "-rows");
    var index = parseInt(total.value, 10);
    if (most && index >= parseInt(most.value, 10)) {
      return;
    }
    rows.insertAdjacentHTML("beforeend", template.innerHTML.replace(/__prefix__/g, String(index)));
    total.value = String(index + 1);
    var first = rows.lastElementChild.querySelector("input:not([type=hidden]), select");
    if (first) {
      first.focus();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-formset-add]").forEach(function (button) {
      button.hidden = false;
    });
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-formset-add]");
    if (button) {
      addRow(button.getAttribute("data-formset-add"));
    }
  });
})();

// Preview the effect (SPEC §13): while a preview's replay runs, the page asks for its status
// every second, moves the progress bar, and puts the result in when it has finished (the
// server renders it). Without the script the preview's own page shows the result.
(function () {
  "use strict";

  var POLL_MS = 1000;
  var RETRY_MS = 5000;

  function showProgress(run, state) {
    var bar = run.querySelector("progress");
    var count = run.querySelector("[data-preview-count]");
    if (bar && state.total) {
      bar.max = state.total;
      bar.value = state.done;
    }
    if (count && state.total) {
      count.textContent = state.done + " of " + state.total + " events";
    }
  }

  function showResult(run, state) {
    var progress = run.querySelector("[data-preview-progress]");
    if (progress) {
      progress.remove();
    }
    run.querySelector("[data-preview-result]").innerHTML = state.html;
    run.setAttribute("data-status", state.status);
    window.dispatchEvent(new Event("resize")); // the wide-table cues look at the new table
  }

  function poll(run) {
    window.fetch(run.getAttribute("data-status-url"), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (response.status === 404) {
          // Deleted (a day old, or a partner's data erased): nothing more will come.
          return { status: "gone", html: "<p class=\"muted\">This preview is no longer kept: preview again.</p>" };
        }
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(
        function (state) {
          if (state.html !== undefined) {
            showResult(run, state);
            return;
          }
          showProgress(run, state);
          window.setTimeout(function () { poll(run); }, POLL_MS);
        },
        function () {
          window.setTimeout(function () { poll(run); }, RETRY_MS);
        }
      );
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-preview-run]").forEach(function (run) {
      var status = run.getAttribute("data-status");
      if (status === "queued" || status === "running") {
        poll(run);
      }
    });
  });
})();

// Sortable tables (<table data-sortable>): a header's button sorts the rows by its column,
// numbers by the cells' data-value (by size with data-sort-by="magnitude"), text as read;
// a second click turns the order round. The header says how the table is sorted (aria-sort).
(function () {
  "use strict";

  function cellKey(row, index, type, magnitude) {
    var cell = row.cells[index];
    var text = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent;
    if (type !== "number") {
      return text.trim().toLowerCase();
    }
    var number = parseFloat(text);
    if (isNaN(number)) {
      return 0;
    }
    return magnitude ? Math.abs(number) : number;
  }

  function sortBy(button) {
    var header = button.closest("th");
    var table = header.closest("table");
    var body = table.tBodies[0];
    var index = header.cellIndex;
    var type = button.getAttribute("data-sort");
    var magnitude = button.getAttribute("data-sort-by") === "magnitude";
    var current = header.getAttribute("aria-sort");
    // Numbers biggest first on the first click, text from A.
    var descending = current ? current === "ascending" : type === "number";
    var rows = Array.prototype.slice.call(body.rows).filter(function (row) {
      return row.cells.length > index;
    });
    rows.sort(function (a, b) {
      var x = cellKey(a, index, type, magnitude);
      var y = cellKey(b, index, type, magnitude);
      var order = x < y ? -1 : x > y ? 1 : 0;
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    table.querySelectorAll("thead th").forEach(function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("table[data-sortable] thead .sort-button");
    if (button) {
      sortBy(button);
    }
  });
})();
