/*
 * Read-only BPMN diagrams (case view): every `.diagram-canvas[data-diagram-url]` gets the diagram
 * fetched from that URL, drawn with the bpmn-js NavigatedViewer (global `BpmnJS` from
 * vendor/bpmn-js/bpmn-navigated-viewer.production.min.js, loaded before this file), fitted to the
 * frame (or centred on the current step when a long procedure would be unreadable), with the CSS
 * markers `done` and `current` on the element ids listed in `data-done` and `data-current`, and a
 * small zoom toolbar. `data-process` picks the process, participant or collaboration to show.
 * Errors go, as text, to a sibling `.diagram-error` (created when missing). See README.md here.
 * Works under `script-src 'self'; style-src 'self'`: no eval, no inline style, no innerHTML.
 */
(function () {
  'use strict';

  var READABLE_SCALE = 0.6; // below this zoom, task labels are too small to read
  var FOCUS_SCALE = 0.9;    // zoom used to show the current step(s) of a long procedure
  var MAX_SCALE = 1.5;      // never blow a small diagram up beyond this

  var MESSAGES = {
    fr: {
      label: 'Diagramme du processus',
      toolbar: 'Affichage du diagramme',
      showAll: 'Tout afficher',
      showCurrent: 'Étape en cours',
      zoomIn: 'Zoom avant',
      zoomOut: 'Zoom arrière',
      noViewer: "L'affichage des diagrammes est indisponible (composant non chargé). " +
        "Rechargez la page ; si le problème persiste, prévenez l'administrateur.",
      badUrl: "Le diagramme n'a pas pu être chargé : adresse refusée. Prévenez l'administrateur.",
      forbidden: "Vous n'avez pas accès à ce diagramme. Reconnectez-vous ou demandez l'accès à l'administrateur.",
      notFound: "Le diagramme de ce dossier est introuvable. Prévenez l'administrateur.",
      http: "Le serveur n'a pas fourni le diagramme (erreur {status}). Rechargez la page dans un instant.",
      network: 'Le diagramme n\'a pas pu être chargé (réseau indisponible). Vérifiez la connexion puis rechargez la page.',
      invalid: "Le diagramme n'a pas pu être affiché : le fichier BPMN est invalide. Prévenez le concepteur des processus.",
      processMissing: "Le processus « {name} » n'est pas dans ce diagramme ; le diagramme complet est affiché."
    },
    en: {
      label: 'Process diagram',
      toolbar: 'Diagram view',
      showAll: 'Show all',
      showCurrent: 'Current step',
      zoomIn: 'Zoom in',
      zoomOut: 'Zoom out',
      noViewer: 'Diagrams cannot be shown (viewer not loaded). Reload the page; if it persists, tell the administrator.',
      badUrl: 'The diagram could not be loaded: address refused. Tell the administrator.',
      forbidden: 'You may not see this diagram. Sign in again or ask the administrator for access.',
      notFound: "This case's diagram cannot be found. Tell the administrator.",
      http: 'The server did not return the diagram (error {status}). Reload the page in a moment.',
      network: 'The diagram could not be loaded (network unavailable). Check the connection, then reload the page.',
      invalid: 'The diagram could not be drawn: the BPMN file is invalid. Tell the process designer.',
      processMissing: 'Process "{name}" is not in this diagram; the whole diagram is shown.'
    }
  };

  function language(element) {
    var holder = element.closest('[lang]');
    var lang = (holder && holder.getAttribute('lang')) || document.documentElement.lang || 'fr';
    return lang.toLowerCase().indexOf('en') === 0 ? 'en' : 'fr';
  }

  function message(element, key, values) {
    var text = MESSAGES[language(element)][key];
    Object.keys(values || {}).forEach(function (name) {
      text = text.replace('{' + name + '}', String(values[name]));
    });
    return text;
  }

  function idList(value) {
    return (value || '').split(',').map(function (id) { return id.trim(); }).filter(Boolean);
  }

  // The sibling `.diagram-error` of the canvas, created right after it when the template has none.
  function errorBox(container) {
    var parent = container.parentElement;
    var box = null;
    if (parent) {
      for (var i = 0; i < parent.children.length; i++) {
        if (parent.children[i] !== container && parent.children[i].classList.contains('diagram-error')) {
          box = parent.children[i];
          break;
        }
      }
    }
    if (!box) {
      box = document.createElement('p');
      box.className = 'diagram-error alert alert-warning';
      container.insertAdjacentElement('afterend', box);
    }
    return box;
  }

  function showError(container, text) {
    var box = errorBox(container);
    box.textContent = text;
    box.hidden = false;
    box.setAttribute('role', 'alert');
  }

  function DiagramError(key, values) {
    this.key = key;
    this.values = values || {};
  }

  function fetchXml(url) {
    var target;
    try {
      target = new URL(url, window.location.href);
    } catch (e) {
      return Promise.reject(new DiagramError('badUrl'));
    }
    if (target.origin !== window.location.origin) return Promise.reject(new DiagramError('badUrl'));
    return fetch(target.href, {
      credentials: 'same-origin',
      headers: { Accept: 'application/xml, text/xml;q=0.9, */*;q=0.1' },
      cache: 'no-cache'
    }).then(function (response) {
      if (response.status === 401 || response.status === 403) throw new DiagramError('forbidden');
      if (response.status === 404 || response.status === 410) throw new DiagramError('notFound');
      if (!response.ok) throw new DiagramError('http', { status: response.status });
      return response.text();
    }, function () {
      throw new DiagramError('network');
    });
  }

  function matches(element, name) {
    return !!element && (element.id === name || element.name === name);
  }

  // The BPMNDiagram whose plane shows `name` (a process, collaboration, participant or sub-process).
  function findDiagram(definitions, name) {
    var diagrams = (definitions && definitions.diagrams) || [];
    for (var i = 0; i < diagrams.length; i++) {
      var shown = diagrams[i].plane && diagrams[i].plane.bpmnElement;
      if (!shown) continue;
      if (matches(shown, name)) return diagrams[i];
      var participants = shown.participants || [];
      for (var j = 0; j < participants.length; j++) {
        if (matches(participants[j], name) || matches(participants[j].processRef, name)) return diagrams[i];
      }
    }
    return null;
  }

  // After the right diagram is open: a drill-down plane or a pool of a collaboration to focus on.
  function focusOn(viewer, name) {
    var canvas = viewer.get('canvas');
    var registry = viewer.get('elementRegistry');
    var roots = canvas.getRootElements();
    for (var i = 0; i < roots.length; i++) {
      var bo = roots[i].businessObject;
      if (roots[i].id === name || roots[i].id === name + '_plane' || matches(bo, name)) {
        canvas.setRootElement(roots[i]);
        return null;
      }
    }
    var pools = registry.filter(function (element) { return element.type === 'bpmn:Participant'; });
    var pool = pools.filter(function (element) {
      return matches(element.businessObject, name) || matches(element.businessObject.processRef, name);
    })[0];
    return pools.length > 1 ? pool || null : null;
  }

  // Shows `box` (diagram coordinates, plus a margin) centred in the frame, never above `maxScale`.
  function showBox(canvas, container, box, maxScale) {
    var margin = 30;
    var width = box.width + 2 * margin;
    var height = box.height + 2 * margin;
    var scale = Math.min(container.clientWidth / width, container.clientHeight / height, maxScale);
    var viewWidth = container.clientWidth / scale;
    var viewHeight = container.clientHeight / scale;
    canvas.viewbox({
      x: box.x + box.width / 2 - viewWidth / 2,
      y: box.y + box.height / 2 - viewHeight / 2,
      width: viewWidth,
      height: viewHeight
    });
    return scale;
  }

  function union(shapes) {
    var x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
    shapes.forEach(function (s) {
      x1 = Math.min(x1, s.x); y1 = Math.min(y1, s.y);
      x2 = Math.max(x2, s.x + s.width); y2 = Math.max(y2, s.y + s.height);
    });
    return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
  }

  // The shapes among `ids` on the plane shown (connections and other planes left out).
  function focusShapes(viewer, ids) {
    var canvas = viewer.get('canvas');
    var registry = viewer.get('elementRegistry');
    var root = canvas.getRootElement();
    return ids.map(function (id) { return registry.get(id); }).filter(function (element) {
      return element && !element.waypoints && canvas.findRoot(element) === root;
    });
  }

  function showAll(viewer, container, pool) {
    var canvas = viewer.get('canvas');
    return pool ? showBox(canvas, container, pool, MAX_SCALE) : canvas.zoom('fit-viewport', 'auto');
  }

  // Fits the diagram (or the chosen pool); when that makes labels unreadably small (long
  // procedures), centres the current step(s) at a readable zoom instead (the toolbar's
  // "Tout afficher" gives the overview). Returns false while the frame is hidden.
  function fit(viewer, container, pool, focusIds) {
    if (!container.clientWidth || !container.clientHeight) return false;
    viewer.get('canvas').resized();
    if (showAll(viewer, container, pool) < READABLE_SCALE) {
      var shapes = focusShapes(viewer, focusIds);
      if (shapes.length) showBox(viewer.get('canvas'), container, union(shapes), FOCUS_SCALE);
    }
    return true;
  }

  // Buttons before the frame: touch screens cannot pan or zoom a bpmn-js canvas otherwise.
  function toolbar(viewer, container, pool, focusIds) {
    var canvas = viewer.get('canvas');
    var bar = document.createElement('div');
    bar.className = 'diagram-toolbar btn-toolbar gap-1 mb-1';
    bar.setAttribute('role', 'toolbar');
    bar.setAttribute('aria-label', message(container, 'toolbar'));
    var button = function (text, label, action) {
      var b = document.createElement('button');
      b.type = 'button';
      b.className = 'btn btn-sm btn-outline-secondary';
      b.textContent = text;
      if (label) b.setAttribute('aria-label', label);
      if (label) b.title = label;
      b.addEventListener('click', action);
      bar.appendChild(b);
    };
    button(message(container, 'showAll'), null, function () { showAll(viewer, container, pool); });
    if (focusShapes(viewer, focusIds).length) {
      button(message(container, 'showCurrent'), null, function () {
        showBox(canvas, container, union(focusShapes(viewer, focusIds)), FOCUS_SCALE);
      });
    }
    button('+', message(container, 'zoomIn'), function () { canvas.zoom(canvas.zoom() * 1.25); });
    button('\u2212', message(container, 'zoomOut'), function () { canvas.zoom(canvas.zoom() / 1.25); });
    container.insertAdjacentElement('beforebegin', bar);
  }

  function mark(viewer, ids, marker) {
    var canvas = viewer.get('canvas');
    var registry = viewer.get('elementRegistry');
    ids.forEach(function (id) {
      if (registry.get(id)) canvas.addMarker(id, marker); // ids of other diagrams are ignored
    });
  }

  function watchSize(viewer, container, pool, focusIds, fitted) {
    var done = fitted;
    var onResize = function () {
      if (!done) {
        done = fit(viewer, container, pool, focusIds);
      } else if (container.clientWidth && container.clientHeight) {
        viewer.get('canvas').resized();
      }
    };
    if (typeof ResizeObserver === 'function') {
      new ResizeObserver(onResize).observe(container);
    } else {
      window.addEventListener('resize', onResize);
    }
  }

  async function render(container) {
    if (typeof window.BpmnJS !== 'function') throw new DiagramError('noViewer');
    var xml = await fetchXml(container.getAttribute('data-diagram-url'));
    var viewer = new window.BpmnJS({ container: container });
    try {
      var result = await viewer.importXML(xml);
      if (result && result.warnings && result.warnings.length && window.console) {
        console.warn('diagram.js: import warnings', result.warnings);
      }
    } catch (e) {
      if (window.console) console.error('diagram.js: import failed', e);
      viewer.destroy();
      throw new DiagramError('invalid');
    }
    var pool = null;
    var name = (container.getAttribute('data-process') || '').trim();
    if (name) {
      var diagram = findDiagram(viewer.getDefinitions(), name);
      if (!diagram) {
        showError(container, message(container, 'processMissing', { name: name }));
      } else {
        var current = viewer.get('canvas').getRootElement().businessObject;
        var currentDiagram = current && current.di && current.di.$parent;
        if (currentDiagram !== diagram) await viewer.open(diagram);
        pool = focusOn(viewer, name);
      }
    }
    var currentIds = idList(container.getAttribute('data-current'));
    mark(viewer, idList(container.getAttribute('data-done')), 'done');
    mark(viewer, currentIds, 'current');
    watchSize(viewer, container, pool, currentIds, fit(viewer, container, pool, currentIds));
    toolbar(viewer, container, pool, currentIds);
    container.setAttribute('aria-busy', 'false');
    return viewer;
  }

  function start() {
    var containers = document.querySelectorAll('.diagram-canvas[data-diagram-url]');
    Array.prototype.forEach.call(containers, function (container) {
      container.setAttribute('aria-busy', 'true');
      if (!container.hasAttribute('aria-label') && !container.hasAttribute('aria-labelledby')) {
        container.setAttribute('aria-label', message(container, 'label'));
      }
      render(container).catch(function (error) {
        container.setAttribute('aria-busy', 'false');
        if (!(error instanceof DiagramError)) {
          if (window.console) console.error('diagram.js', error);
          error = new DiagramError('invalid');
        }
        showError(container, message(container, error.key, error.values));
      });
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
