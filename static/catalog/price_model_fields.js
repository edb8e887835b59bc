// Plan version form: each price shows only the fields of its charge's price model (and tiers only
// for tiered models, with a unit price or a percentage per tier as the model takes). The fields stay
// in the form, so the server still validates everything; this only hides what does not apply.
(function () {
  const data = document.getElementById("price-model-fields");
  if (!data) return;
  const fieldsByModel = JSON.parse(data.textContent);
  // Optional fields of a price and of a tier (the others, e.g. currency, are always shown).
  const priceFields = new Set(Object.values(fieldsByModel).flatMap(function (m) { return m.price; }));
  const tierFields = new Set(["unit_amount", "percentage"]);

  // The admin's CSS gives field boxes a display of their own, which outranks the `hidden` attribute.
  function show(element, visible) {
    element.style.display = visible ? "" : "none";
  }

  function container(input) {
    return input.closest(".fieldBox") || input.closest(".form-row") || input.closest("td") || input.parentElement;
  }

  function apply(select) {
    const charge = select.name.replace(/-price_model$/, "");  // e.g. "charges-0"
    const model = fieldsByModel[select.value];
    if (!model) return;
    const usesTiers = model.tiers.length > 0;
    document.querySelectorAll('[name^="' + charge + '-prices-"]').forEach(function (input) {
      const rest = input.name.slice(charge.length + 1);  // "prices-0-amount", "prices-0-tiers-1-percentage"
      let match = rest.match(/^prices-\d+-tiers-\d+-(\w+)$/);
      if (match) {
        if (tierFields.has(match[1])) show(container(input), model.tiers.includes(match[1]));
        return;
      }
      match = rest.match(/^prices-\d+-(\w+)$/);
      if (match && priceFields.has(match[1])) show(container(input), model.price.includes(match[1]));
    });
    document.querySelectorAll('[id^="' + charge + '-prices-"][id$="-tiers-group"]').forEach(function (group) {
      show(group, usesTiers);
      group.querySelectorAll("th.percentage").forEach(function (th) { show(th, model.tiers.includes("percentage")); });
      group.querySelectorAll("th.unit-amount").forEach(function (th) { show(th, model.tiers.includes("unit_amount")); });
    });
  }

  function applyAll() {
    document.querySelectorAll('select[name$="-price_model"]').forEach(apply);
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches('select[name$="-price_model"]')) apply(event.target);
  });
  // Rows added with "Add another" arrive later: apply again after each.
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest(".djn-add-handler")) setTimeout(applyAll, 0);
  });
  applyAll();
})();
