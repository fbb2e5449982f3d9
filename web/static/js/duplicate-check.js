/*
 * Duplicate-request warning of the new-request page (see README.md here): once the patient (name and birth
 * date, or the site's patient id, or the INS) and the modality are filled in, asks `[data-duplicate-url]`
 * whether an open request exists for the same patient and modality, and shows the server's French sentence in
 * `#duplicate-check`. The server checks again on submit (a confirmation box), so this is a head start only.
 * No globals, no inline code: fits `script-src 'self'`.
 */
(function () {
  'use strict';

  var box = document.getElementById('duplicate-check');
  var form = box && box.closest('form');
  if (!form || !window.fetch) return;
  var FIELDS = ['site_id', 'patient-birth_name', 'patient-first_names', 'patient-birth_date',
    'patient-site_patient_id', 'patient-ins', 'modality'];
  var timer = null;
  var last = '';

  function value(name) {
    var field = form.elements.namedItem(name);
    if (!field) return '';
    if (field instanceof RadioNodeList) return field.value || '';
    return (field.value || '').trim();
  }

  function check() {
    var params = new URLSearchParams();
    FIELDS.forEach(function (name) { params.set(name, value(name)); });
    var patientKnown = (value('patient-birth_name') && value('patient-birth_date')) ||
      value('patient-site_patient_id') || value('patient-ins');
    if (!patientKnown || !value('modality') || !value('site_id')) { box.hidden = true; return; }
    var query = params.toString();
    if (query === last) return;
    last = query;
    window.fetch(box.getAttribute('data-duplicate-url') + '?' + query,
      { credentials: 'same-origin', headers: { Accept: 'application/json', 'X-Telerad-Background': '1' } })
      .then(function (response) { return response.ok ? response.json() : { warnings: [] }; })
      .then(function (answer) {
        var warnings = (answer && answer.warnings) || [];
        box.textContent = warnings.join(' ');
        box.hidden = warnings.length === 0;
      })
      .catch(function () { /* the server checks again on submit */ });
  }

  form.addEventListener('change', function (event) {
    if (event.target && FIELDS.indexOf(event.target.name) >= 0) {
      window.clearTimeout(timer);
      timer = window.setTimeout(check, 250);
    }
  });
  check();
}());
