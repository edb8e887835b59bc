// Price change form: recomputes the price calculator as staff type (the form works without it).
(function () {
  const form = document.getElementById("calculator-form");
  const inputs = document.querySelectorAll("[form=calculator-form]");
  const result = document.getElementById("calculator-result");
  const script = document.getElementById("price-calculator-script");
  const url = script.dataset.calculatorUrl;
  const text = script.dataset;  // the page's texts, in the staff user's language
  function cell(text, right, strong) {
    const td = document.createElement("td");
    if (right) td.style.textAlign = "right";
    const node = strong ? document.createElement("strong") : document.createTextNode(text);
    if (strong) node.textContent = text;
    td.appendChild(node);
    return td;
  }
  function render(data) {
    result.replaceChildren();
    if (data.error) {
      const p = document.createElement("p"); p.className = "errornote"; p.textContent = data.error;
      result.appendChild(p); return;
    }
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    head.appendChild(cell(text.textComputed)); head.appendChild(cell(text.textExactAmount, true));
    const body = table.createTBody();
    for (const line of data.lines) {
      const row = body.insertRow(); row.appendChild(cell(line.description)); row.appendChild(cell(line.amount, true));
    }
    let row = body.insertRow();
    row.appendChild(cell(text.textAmount + " " + text.textRounded.replace("__EXACT__", data.exact_amount), false, true));
    row.appendChild(cell(data.amount + " " + data.currency, true, true));
    if (Number(data.minimum_true_up) !== 0) {
      row = body.insertRow(); row.appendChild(cell(text.textTrueUp)); row.appendChild(cell(data.minimum_true_up, true));
      row = body.insertRow(); row.appendChild(cell(text.textTotal, false, true)); row.appendChild(cell(data.total + " " + data.currency, true, true));
    }
    result.appendChild(table);
  }
  let timer = null;
  inputs.forEach(function (input) { input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      const params = new URLSearchParams(new FormData(form));
      fetch(url + "?" + params.toString(), {credentials: "same-origin"})
        .then(function (response) { return response.json(); })
        .then(render)
        .catch(function () { render({error: text.textUnreachable}); });
    }, 200);
  }); });
})();
