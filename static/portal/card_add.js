// Add a card: Stripe.js confirms the SetupIntent with the card, then the form posts its id.
(function () {
  var form = document.getElementById("card-form");
  if (!form) { return; }
  var stripe = Stripe(form.dataset.publishableKey);
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  form.addEventListener("submit", async function (event) {
    if (document.getElementById("setup-intent").value) { return; }
    event.preventDefault();
    document.getElementById("card-submit").disabled = true;
    var result = await stripe.confirmCardSetup(form.dataset.clientSecret, {payment_method: {card: card}});
    if (result.error) {
      document.getElementById("card-errors").textContent = result.error.message || form.dataset.refusedMessage;
      document.getElementById("card-submit").disabled = false;
      return;
    }
    document.getElementById("setup-intent").value = result.setupIntent.id;
    form.submit();
  });
})();
