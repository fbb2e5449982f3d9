// Fee statement (admin/fees/statement.html): the "Imprimer / PDF" button opens the browser's print dialog, where the
// statement is printed or saved as PDF with its print stylesheet (css/fees.css). A file of its own: the
// Content-Security-Policy forbids inline scripts.
(function () {
  "use strict";
  document.querySelectorAll("[data-print-statement]").forEach(function (button) {
    button.addEventListener("click", function () {
      window.print();
    });
  });
})();
