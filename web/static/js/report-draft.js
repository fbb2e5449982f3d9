// The report's draft (issue 17, item 5): prefills the report form from the author's draft, then saves it every few
// seconds while it changes and whenever a field is left. The signature code is never saved.
(function () {
  'use strict';
  var box = document.querySelector('[data-report-draft]');
  if (!box) { return; }
  var form = document.querySelector('form[action="' + box.getAttribute('data-form-action') + '"]');
  if (!form) { return; }
  var status = box.querySelector('[data-draft-status]');
  var skipped = { csrf_token: true, signature_code: true };
  var dirty = false;
  var saving = false;

  function prefill(fields) {
    Object.keys(fields).forEach(function (name) {
      if (skipped[name]) { return; }
      var value = fields[name];
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name !== name) { return; }
        if (el.type === 'checkbox') { el.checked = value === true; }
        else if (el.type === 'radio') { el.checked = el.value === value; }
        else if (typeof value === 'string' && value !== '') { el.value = value; }
      });
    });
  }

  function fieldsOf() {
    var fields = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || skipped[el.name] || el.type === 'submit' || el.type === 'button') { return; }
      if (el.type === 'checkbox') { fields[el.name] = el.checked; }
      else if (el.type === 'radio') { if (el.checked) { fields[el.name] = el.value; } }
      else { fields[el.name] = el.value; }
    });
    return fields;
  }

  function save() {
    if (!dirty || saving) { return; }
    dirty = false;
    saving = true;
    fetch(box.getAttribute('data-draft-url'), {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRFToken': box.getAttribute('data-csrf'),
                 Accept: 'application/json' },
      body: JSON.stringify({ fields: fieldsOf() })
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      status.textContent = box.getAttribute('data-saved-label') + ' ' + new Date().toLocaleTimeString('fr-FR');
    }).catch(function () {
      dirty = true;
      status.textContent = box.getAttribute('data-failed-label');
    }).then(function () { saving = false; });
  }

  try { prefill(JSON.parse(box.getAttribute('data-draft') || '{}')); } catch (e) { /* an unreadable draft: none */ }
  form.addEventListener('input', function (event) {
    if (event.target && !skipped[event.target.name]) { dirty = true; }
  });
  form.addEventListener('change', function (event) {
    if (event.target && !skipped[event.target.name]) { dirty = true; save(); }
  });
  form.addEventListener('focusout', save);
  window.setInterval(save, 5000);
}());
