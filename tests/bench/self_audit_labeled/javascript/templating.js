// Template engines driven from JavaScript.
const Handlebars = require("handlebars");
const _ = require("lodash");
const nunjucks = require("nunjucks");
const Mustache = require("mustache");
const { SafeString } = require("handlebars");

function compile(source, src, html, userTemplate, tpl, ctx, body, loader, text) {
  // tw:pos handlebars
  const a = Handlebars.compile(source);
  // tw:pos handlebars
  const b = Handlebars.compile(src, { noEscape: true });
  // tw:pos handlebars
  const c = new Handlebars.SafeString(html);
  // tw:pos lodash
  const d = _.template(userTemplate);
  // tw:pos nunjucks
  const e = nunjucks.renderString(tpl, ctx);
  // tw:pos nunjucks
  nunjucks.configure("views", { autoescape: false });
  // tw:pos mustache
  Mustache.escape = function (value) { return value; };
  // tw:pos nunjucks
  const f = new nunjucks.Environment(loader, { autoescape: false });
  // tw:pos handlebars
  const g = new SafeString(body);
  // tw:neg handlebars
  const h = Handlebars.compile("<p>{{name}}</p>");
  // tw:neg handlebars
  const i = new Handlebars.SafeString("<br>");
  // tw:neg handlebars
  const j = new Handlebars.SafeString(Handlebars.escapeExpression(text));
  // tw:neg lodash
  const k = _.template("<b><%- name %></b>");
  // tw:neg nunjucks
  const l = nunjucks.render("page.njk", ctx);
  // tw:neg nunjucks
  nunjucks.configure("views", { autoescape: true });
  // tw:neg lodash
  const m = _.escape(text);
  // Handlebars.compile(source) in a comment
  // tw:neg mustache
  const n = Mustache.render("{{name}}", ctx);
  return [a, b, c, d, e, f, g, h, i, j, k, l, m, n];
}

module.exports = { compile };
