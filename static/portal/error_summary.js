// A form that comes back refused: move the focus (and the view) to its error summary, so that everyone,
// on a screen reader, a keyboard or a phone, learns at once that nothing was saved and why. A link of
// the summary focuses its field.
(function () {
  const summary = document.querySelector('[data-error-summary]');
  if (!summary) return;
  summary.focus();
  summary.scrollIntoView({block: 'start'});
  summary.addEventListener('click', (event) => {
    const link = event.target.closest('a[href^="#"]');
    const field = link && document.getElementById(link.getAttribute('href').slice(1));
    if (!field) return;
    event.preventDefault();
    field.scrollIntoView({block: 'center'});
    field.focus();
  });
})();
