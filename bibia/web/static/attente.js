// bibia — the demonstrator's waiting page follows the start without reloading.
//
// It asks /demonstrateurs/{id}/etat (JSON, the page's own access check) every
// few seconds and writes the French message into the page's status region
// (role="status": screen readers announce it). Ready, it shows « Ouvrir le
// démonstrateur » and the time left; ended, it says so and leaves « Actualiser ».
// It gives up after data-limite seconds, or after a few failed requests, and
// says so. Without this script the page's « Actualiser » link does the same.
(function () {
  "use strict";

  var box = document.getElementById("attente");
  if (!box || !window.fetch || !window.JSON) {
    return;
  }
  var url = box.getAttribute("data-etat");
  var limitMs = 1000 * (parseInt(box.getAttribute("data-limite"), 10) || 150);
  var message = document.getElementById("attente-message");
  var refresh = document.getElementById("attente-actualiser");
  var open = document.getElementById("attente-ouvrir");
  var left = document.getElementById("attente-duree");
  var started = Date.now();
  var failures = 0;
  var MAX_FAILURES = 5;

  function say(text) {
    if (message.textContent !== text) {
      message.textContent = text;
    }
  }

  function stop(text) {
    say(text);
    refresh.hidden = false;
  }

  function delay() {
    var elapsed = Date.now() - started;
    return elapsed < 10000 ? 1000 : elapsed < 60000 ? 2000 : 5000;
  }

  function next() {
    if (Date.now() - started > limitMs) {
      stop(
        "Le démarrage prend plus de temps que prévu ; cette page ne le suit plus. " +
          "Actualisez-la pour voir où il en est."
      );
      return;
    }
    window.setTimeout(poll, delay());
  }

  function show(state) {
    if (state.waiting) {
      say(state.message);
      next();
      return;
    }
    if (state.ready) {
      message.className = "alerte alerte-succes";
      say(state.message + " Ouvrez-le avec le bouton « Ouvrir le démonstrateur » ci-dessous.");
      refresh.hidden = true;
      open.hidden = false;
      if (state.until) {
        left.textContent = "Il reste disponible " + state.until + ", puis il est arrêté automatiquement.";
        left.hidden = false;
      }
      return;
    }
    // ended before it was ready: the page, reloaded, shows why
    stop(state.message + " Actualisez la page pour en voir le détail.");
  }

  function poll() {
    window
      .fetch(url, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(String(response.status));
        }
        return response.json();
      })
      .then(function (state) {
        failures = 0;
        show(state);
      })
      .catch(function () {
        failures += 1;
        if (failures >= MAX_FAILURES) {
          stop(
            "Impossible de suivre le démarrage depuis cette page (le service ne répond pas). " +
              "Actualisez-la dans un instant."
          );
          return;
        }
        next();
      });
  }

  next();
})();
