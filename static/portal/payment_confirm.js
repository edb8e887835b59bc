// A payment the bank wants confirmed (3-D Secure): Stripe.js runs the check, then the page reloads.
(function () {
  var box = document.getElementById("action");
  if (!box) { return; }
  var stripe = Stripe(box.dataset.publishableKey);
  document.getElementById("confirm-payment").addEventListener("click", async function () {
    await stripe.confirmCardPayment(box.dataset.clientSecret);
    window.location = box.dataset.return;
  });
})();
