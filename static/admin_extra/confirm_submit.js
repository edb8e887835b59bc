// Forms with a data-confirm attribute ask before they are sent (no inline handler: the CSP allows none).
document.addEventListener("submit", function (event) {
  var message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
