/* The typed rule builder of the segment form: edits the rule as nested groups and
   conditions, writes the JSON into the (hidden) rules textarea, and asks the server for a
   live count and sample. Plain JavaScript, no libraries. */
(function () {
  "use strict";
  var textarea = document.querySelector("textarea.segment-rules");
  if (!textarea) { return; }
  var options = JSON.parse(document.getElementById("segment-builder-options").textContent);
  var previewUrl = window.location.pathname.replace(/\/(add|\d+\/change)\/$/, "/preview/");
  var csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value;

  var KINDS = ["trait", "profile", "event", "segment", "reachable", "score", "cluster", "consent", "rfm"];
  var NUMBER_OPS = ["less_than", "less_or_equal", "greater_than", "greater_or_equal",
    "within_last_days", "more_than_days_ago", "anniversary_within_days"];
  var TYPED_OPS = ["equals", "not_equals", "in", "contains"];

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") { node.textContent = attrs[name]; } else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }
  function select(values, current, onchange) {
    var node = el("select");
    values.forEach(function (value) {
      var option = el("option", {value: value, text: value.replace(/_/g, " ")});
      if (value === current) { option.selected = true; }
      node.appendChild(option);
    });
    node.addEventListener("change", function () { onchange(node.value); });
    return node;
  }
  function input(type, value, onchange, placeholder) {
    var node = el("input", {type: type, placeholder: placeholder || ""});
    node.value = value === undefined || value === null ? "" : value;
    node.addEventListener("input", function () { onchange(node.value); });
    return node;
  }
  function button(label, onclick) {
    var node = el("button", {type: "button", text: label});
    node.addEventListener("click", function (event) { event.preventDefault(); onclick(); });
    return node;
  }

  /* Values typed as text become JSON of the chosen type. */
  function typeOf(value) {
    if (typeof value === "number") { return "number"; }
    if (typeof value === "boolean") { return "yes/no"; }
    return "text";
  }
  function convert(text, type) {
    if (type === "number") { var number = Number(text); return text.trim() === "" || isNaN(number) ? text : number; }
    if (type === "yes/no") { return text.trim().toLowerCase() === "yes" || text.trim().toLowerCase() === "true"; }
    return text;
  }
  function display(value) {
    if (typeof value === "boolean") { return value ? "yes" : "no"; }
    return value === undefined ? "" : String(value);
  }

  /* A value condition: {key|property|field, op, value}. */
  function valueEditor(body, operators, changed) {
    var parts = [];
    parts.push(select(operators, body.op, function (op) {
      body.op = op;
      if (op === "exists") { delete body.value; }
      else if (op === "between") { body.value = [0, 0]; }
      else if (op === "in") { body.value = []; }
      else if (NUMBER_OPS.indexOf(op) >= 0) { body.value = 0; }
      else { body.value = ""; }
      changed(true);
    }));
    var op = body.op;
    if (op === "exists") { return parts; }
    if (op === "between") {
      var range = Array.isArray(body.value) ? body.value : [0, 0];
      parts.push(input("number", range[0], function (v) { body.value = [Number(v), range[1]]; range = body.value; changed(); }, "low"));
      parts.push(input("number", range[1], function (v) { body.value = [range[0], Number(v)]; range = body.value; changed(); }, "high"));
      return parts;
    }
    if (NUMBER_OPS.indexOf(op) >= 0) {
      var unit = op.indexOf("days") >= 0 || op.indexOf("ago") >= 0 ? "days" : "number";
      parts.push(input("number", body.value, function (v) { body.value = Number(v); changed(); }, unit));
      return parts;
    }
    if (op === "before" || op === "after") {
      parts.push(input("date", String(body.value || "").slice(0, 10), function (v) { body.value = v; changed(); }));
      return parts;
    }
    if (op === "starts_with" || operators === options.textOperators) {
      var shown = op === "in" ? (body.value || []).join(", ") : body.value;
      parts.push(input("text", shown, function (v) {
        body.value = op === "in" ? v.split(",").map(function (s) { return s.trim(); }).filter(Boolean) : v;
        changed();
      }, op === "in" ? "a, b, c" : "text"));
      return parts;
    }
    /* equals / not_equals / in / contains on JSON values: text, number or yes/no */
    var sample = op === "in" ? (body.value || [])[0] : body.value;
    var type = typeOf(sample);
    var typed = select(["text", "number", "yes/no"], type, function (t) { type = t; write(text.value); });
    var text = input("text", op === "in" ? (body.value || []).map(display).join(", ") : display(body.value),
      function (v) { write(v); }, op === "in" ? "a, b, c" : "value");
    function write(v) {
      body.value = op === "in"
        ? v.split(",").map(function (s) { return s.trim(); }).filter(Boolean).map(function (s) { return convert(s, type); })
        : convert(v, type);
      changed();
    }
    parts.push(typed, text);
    return parts;
  }

  function conditionEditor(node, replace, remove, changed) {
    var negated = node.not !== undefined;
    var inner = negated ? node.not : node;
    var kind = Object.keys(inner)[0];
    var row = el("div", {"class": "rule-row"});
    var notBox = el("input", {type: "checkbox", title: "not"});
    notBox.checked = negated;
    notBox.addEventListener("change", function () { replace(notBox.checked ? {not: inner} : inner); changed(true); });
    row.appendChild(el("label", {}, [notBox, document.createTextNode(" not ")]));
    if (kind === "all" || kind === "any") {
      row.appendChild(groupEditor(inner, changed));
      row.appendChild(button("remove group", remove));
      return row;
    }
    row.appendChild(select(KINDS, kind, function (newKind) {
      var fresh = blank(newKind);
      replace(negated ? {not: fresh} : fresh);
      changed(true);
    }));
    var body = inner[kind];
    if (kind === "trait") {
      row.appendChild(input("text", body.key, function (v) { body.key = v; changed(); }, "trait, e.g. plan"));
      valueEditor(body, options.valueOperators, changed).forEach(function (p) { row.appendChild(p); });
    } else if (kind === "profile") {
      row.appendChild(select(options.textFields.concat(options.dateFields), body.field, function (field) {
        body.field = field;
        var date = options.dateFields.indexOf(field) >= 0;
        body.op = date ? "within_last_days" : "exists";
        if (date) { body.value = 30; } else { delete body.value; }
        changed(true);
      }));
      var ops = options.dateFields.indexOf(body.field) >= 0 ? options.dateOperators : options.textOperators;
      valueEditor(body, ops, changed).forEach(function (p) { row.appendChild(p); });
    } else if (kind === "event") {
      row.appendChild(select(["did", "did not"], body.performed === false ? "did not" : "did", function (v) {
        if (v === "did not") { body.performed = false; delete body.count; } else { delete body.performed; }
        changed(true);
      }));
      row.appendChild(input("text", body.name, function (v) { body.name = v; changed(); }, "event name"));
      if (body.performed !== false) {
        var count = body.count || {};
        row.appendChild(document.createTextNode("at least"));
        row.appendChild(input("number", count.at_least, function (v) { setCount("at_least", v); }, "1"));
        row.appendChild(document.createTextNode("at most"));
        row.appendChild(input("number", count.at_most, function (v) { setCount("at_most", v); }, "any"));
      }
      row.appendChild(document.createTextNode("in the last"));
      row.appendChild(input("number", body.within_days, function (v) {
        if (v === "") { delete body.within_days; } else { body.within_days = Number(v); }
        changed();
      }, "all time"));
      row.appendChild(document.createTextNode("days"));
      var where = el("div", {"class": "rule-where"});
      (body.where || []).forEach(function (condition, index) {
        var line = el("div", {"class": "rule-row"}, [document.createTextNode("where property")]);
        line.appendChild(input("text", condition.property, function (v) { condition.property = v; changed(); }, "e.g. total"));
        valueEditor(condition, options.valueOperators, changed).forEach(function (p) { line.appendChild(p); });
        line.appendChild(button("×", function () { body.where.splice(index, 1); if (!body.where.length) { delete body.where; } changed(true); }));
        where.appendChild(line);
      });
      where.appendChild(button("+ property filter", function () {
        body.where = (body.where || []).concat([{property: "", op: "equals", value: ""}]);
        changed(true);
      }));
      row.appendChild(where);
    } else if (kind === "segment") {
      row.appendChild(document.createTextNode("is in"));
      row.appendChild(select([""].concat(options.segmentKeys), body.key, function (v) { body.key = v; changed(); }));
    } else if (kind === "reachable") {
      row.appendChild(document.createTextNode("by"));
      row.appendChild(select(options.channels, body.channel, function (v) { body.channel = v; changed(); }));
    } else if (kind === "score") {
      row.appendChild(select(options.scoreModels, body.model, function (v) { body.model = v; changed(); }));
      row.appendChild(document.createTextNode("score"));
      row.appendChild(select(options.scoreOperators, body.op, function (v) {
        body.op = v;
        body.value = v === "top_percent" ? 10 : 0.5;
        changed(true);
      }));
      var percent = body.op === "top_percent";
      var score = input("number", body.value, function (v) { body.value = Number(v); changed(); }, percent ? "percent" : "0 to 1");
      score.setAttribute("step", percent ? "1" : "0.01"); score.setAttribute("min", "0"); score.setAttribute("max", percent ? "100" : "1");
      row.appendChild(score);
      if (percent) { row.appendChild(document.createTextNode("%")); }
    } else if (kind === "cluster") {
      // Cluster numbers, comma-separated; the model version's page describes each one.
      row.appendChild(document.createTextNode("is in cluster"));
      row.appendChild(input("text", (body["in"] || []).join(", "), function (v) {
        body["in"] = v.split(",").map(function (part) { return part.trim(); })
          .filter(function (part) { return part !== ""; })
          .map(function (part) { return /^[0-9]+$/.test(part) ? Number(part) : part; });
        changed();
      }, "0, 2"));
    } else if (kind === "consent") {
      row.appendChild(document.createTextNode("to topic"));
      row.appendChild(select([""].concat(options.consentTopics), body.topic, function (v) { body.topic = v; changed(); }));
      row.appendChild(document.createTextNode("by"));
      row.appendChild(select(options.channels, body.channel, function (v) { body.channel = v; changed(); }));
      row.appendChild(document.createTextNode("is"));
      row.appendChild(select(options.consentStates, body.state, function (v) { body.state = v; changed(); }));
    } else if (kind === "rfm") {
      // A named RFM segment, or "any" with score bounds below (1 to 5).
      row.appendChild(document.createTextNode("segment"));
      row.appendChild(select(["any"].concat(options.rfmSegments), body.segment || "any", function (v) {
        if (v === "any") { delete body.segment; } else { body.segment = v; }
        changed();
      }));
      options.rfmScores.forEach(function (score) {
        var bounds = body[score] || {};
        row.appendChild(document.createTextNode(score + " ≥"));
        var low = input("number", bounds.gte, function (v) { setBound(score, "gte", v); }, "1-5");
        low.setAttribute("min", "1"); low.setAttribute("max", "5");
        row.appendChild(low);
      });
    }
    row.appendChild(button("remove", remove));
    return row;

    function setBound(score, bound, v) {
      var bounds = body[score] || {};
      if (v === "") { delete bounds[bound]; } else { bounds[bound] = Number(v); }
      if (Object.keys(bounds).length) { body[score] = bounds; } else { delete body[score]; }
      changed();
    }

    function setCount(bound, v) {
      var count = body.count || {};
      if (v === "") { delete count[bound]; } else { count[bound] = Number(v); }
      if (Object.keys(count).length) { body.count = count; } else { delete body.count; }
      changed();
    }
  }

  function blank(kind) {
    if (kind === "trait") { return {trait: {key: "", op: "equals", value: ""}}; }
    if (kind === "profile") { return {profile: {field: "email", op: "exists"}}; }
    if (kind === "event") { return {event: {name: ""}}; }
    if (kind === "segment") { return {segment: {key: options.segmentKeys[0] || ""}}; }
    if (kind === "score") { return {score: {model: options.scoreModels[0], op: "above", value: 0.5}}; }
    if (kind === "cluster") { return {cluster: {in: [0]}}; }
    if (kind === "consent") { return {consent: {channel: "email", topic: options.consentTopics[0] || "", state: "allowed"}}; }
    if (kind === "rfm") { return {rfm: {segment: "champions"}}; }
    return {reachable: {channel: "email"}};
  }

  function groupEditor(group, changed) {
    var mode = group.all !== undefined ? "all" : "any";
    var children = group[mode];
    var box = el("div", {"class": "rule-group"});
    box.appendChild(el("div", {"class": "rule-row"}, [
      document.createTextNode("Customers matching "),
      select(["all", "any"], mode, function (m) { delete group[mode]; group[m] = children; changed(true); }),
      document.createTextNode(" of:")
    ]));
    children.forEach(function (child, index) {
      box.appendChild(conditionEditor(child,
        function (replacement) { children[index] = replacement; },
        function () { children.splice(index, 1); changed(true); },
        changed));
    });
    box.appendChild(el("div", {"class": "rule-row"}, [
      button("+ condition", function () { children.push(blank("trait")); changed(true); }),
      button("+ group", function () { children.push({any: [blank("trait")]}); changed(true); })
    ]));
    return box;
  }

  /* The root is always a group; a bare condition is shown inside one "all". */
  var rule;
  try { rule = textarea.value.trim() ? JSON.parse(textarea.value) : null; } catch (e) { rule = null; }
  if (rule === null && textarea.value.trim()) { return; }  /* unreadable JSON: leave the textarea */
  if (!rule || (rule.all === undefined && rule.any === undefined)) { rule = {all: rule ? [rule] : [blank("trait")]}; }

  var builder = el("div", {"class": "rule-builder"});
  var preview = el("div", {"class": "rule-preview", "aria-live": "polite"});
  var toggle = button("show JSON", function () {
    textarea.style.display = textarea.style.display === "none" ? "" : "none";
  });
  textarea.parentNode.insertBefore(builder, textarea);
  textarea.parentNode.insertBefore(preview, textarea);
  textarea.parentNode.insertBefore(toggle, textarea);
  textarea.style.display = "none";
  textarea.addEventListener("input", function () {
    try { rule = JSON.parse(textarea.value); render(); schedule(); } catch (e) { /* typing */ }
  });

  var timer = null;
  function changed(structure) {
    textarea.value = JSON.stringify(rule, null, 2);
    if (structure) { render(); }
    schedule();
  }
  function render() {
    builder.innerHTML = "";
    builder.appendChild(groupEditor(rule, changed));
  }
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(count, 400);
  }
  function count() {
    preview.textContent = "Counting…";
    fetch(previewUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
      body: JSON.stringify({rules: rule})
    }).then(function (response) { return response.json(); }).then(function (answer) {
      preview.innerHTML = "";
      if (answer.errors) {
        var lines = Object.keys(answer.errors).map(function (path) { return path + ": " + answer.errors[path]; });
        preview.appendChild(el("div", {"class": "errors", text: lines.join("\n")}));
        return;
      }
      preview.appendChild(el("strong", {text: answer.count + " customer" + (answer.count === 1 ? "" : "s") + " match now. "}));
      if (answer.sample.length) {
        preview.appendChild(document.createTextNode("For example: " + answer.sample.map(function (c) { return c.label; }).join(", ")));
      }
    }).catch(function () { preview.textContent = "Could not count just now."; });
  }
  render();
  schedule();
}());
