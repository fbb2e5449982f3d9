// Quality audit report (admin/quality_audits/report.html): the "Imprimer / PDF" button opens the browser's print
// dialog, where the report is printed or saved as PDF with its print stylesheet (css/quality-audit.css).
// A file of its own: the Content-Security-Policy forbids inline scripts.
(function () {
  "use strict";
  document.querySelectorAll("[data-print-report]").forEach(function (button) {
    button.addEventListener("click", function () {
      window.print();
    });
  });
})();
