/*
 * Visual diff of two versions (page designer/diff.html): every `.diff-canvas[data-diagram-url]` is drawn
 * with the bpmn-js NavigatedViewer (global `BpmnJS`) and its elements listed in `data-added`,
 * `data-removed` and `data-changed` (comma-separated ids) get the CSS markers `diff-added`,
 * `diff-removed` and `diff-changed` (colours in telerad.css). Same origin only; no inline code.
 */
(function () {
  'use strict';

  function ids(value) {
    return (value || '').split(',').map(function (id) { return id.trim(); }).filter(Boolean);
  }

  function showError(container, text) {
    var p = document.createElement('p');
    p.className = 'text-danger small';
    p.setAttribute('role', 'alert');
    p.textContent = text;
    container.insertAdjacentElement('afterend', p);
  }

  function draw(container) {
    var url = new URL(container.getAttribute('data-diagram-url'), window.location.href);
    if (url.origin !== window.location.origin) return Promise.reject(new Error('origin'));
    return fetch(url.href, { credentials: 'same-origin' }).then(function (response) {
      if (!response.ok) throw new Error('HTTP ' + response.status);
      return response.text();
    }).then(function (xml) {
      var viewer = new window.BpmnJS({ container: container });
      return viewer.importXML(xml).then(function () {
        var canvas = viewer.get('canvas');
        var registry = viewer.get('elementRegistry');
        [['data-added', 'diff-added'], ['data-removed', 'diff-removed'], ['data-changed', 'diff-changed']].forEach(function (pair) {
          ids(container.getAttribute(pair[0])).forEach(function (id) {
            if (registry.get(id)) canvas.addMarker(id, pair[1]);
          });
        });
        canvas.zoom('fit-viewport', 'auto');
        container.setAttribute('data-ready', 'true');
      });
    });
  }

  function start() {
    if (typeof window.BpmnJS !== 'function') return;
    Array.prototype.forEach.call(document.querySelectorAll('.diff-canvas[data-diagram-url]'), function (container) {
      draw(container).catch(function (error) {
        var english = (document.documentElement.lang || '').indexOf('en') === 0;
        showError(container, (english ? 'The diagram could not be drawn: ' : "Le diagramme n'a pas pu être affiché : ") +
          (error && error.message));
      });
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}());
