/*
 * Form schema editor (page designer/form.html): while the designer types in `#form-schema`, the
 * schema is sent (debounced) to `data-preview-url`; the server answers with the form rendered exactly
 * as clinicians will see it, shown in `#form-preview`, or with a French error shown in
 * `#form-preview-error`. The HTML comes from our own server and is parsed with DOMParser (scripts in it
 * would not run, and the CSP forbids inline code anyway).
 */
(function () {
  'use strict';

  var editor = document.getElementById('form-schema');
  var preview = document.getElementById('form-preview');
  var errorBox = document.getElementById('form-preview-error');
  if (!editor || !preview) return;
  var timer = null;
  var sequence = 0;

  function refresh() {
    var mine = ++sequence;
    fetch(editor.getAttribute('data-preview-url'), {
      method: 'POST', credentials: 'same-origin', body: editor.value,
      headers: { 'Content-Type': 'text/plain; charset=utf-8', 'X-CSRFToken': editor.getAttribute('data-csrf') }
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      if (mine !== sequence) return; // an older answer arriving late
      if (!result.ok) {
        errorBox.textContent = result.body.error || '';
        preview.classList.add('opacity-50');
        return;
      }
      errorBox.textContent = '';
      preview.classList.remove('opacity-50');
      var parsed = new DOMParser().parseFromString(result.body.html, 'text/html');
      preview.replaceChildren.apply(preview, Array.prototype.slice.call(parsed.body.childNodes));
    }).catch(function () {
      if (mine === sequence) errorBox.textContent = '…';
    });
  }

  editor.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  });
}());
