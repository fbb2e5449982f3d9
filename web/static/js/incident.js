// Downtime procedure page: the print button prints the procedure and its paper form (CSP: no inline script).
document.querySelectorAll("[data-print-procedure]").forEach((button) => {
  button.addEventListener("click", () => window.print());
});
