// AngularJS and jQuery.
angular.module("app", ["ngSanitize"]).config(function ($sceProvider) {
  // tw:pos angular
  $sceProvider.enabled(false);
});

angular.module("app").controller("Post", function ($scope, $sce, $sanitize) {
  $scope.load = function (comment, body, src, url) {
    // tw:pos angular
    $scope.html = $sce.trustAsHtml(comment);
    // tw:pos angular
    $scope.body = $sce.trustAs($sce.HTML, body);
    // tw:pos angular
    $scope.code = $sce.trustAsJs(src);
    // tw:pos angular
    $scope.link = $sce.trustAsResourceUrl(url);
    // tw:neg angular
    $scope.fixed = $sce.trustAsHtml("<br>");
    // tw:neg angular
    $scope.text = $sanitize(body);
  };
});

angular.module("app").config(function ($sceProvider) {
  // tw:neg angular
  $sceProvider.enabled(true);
});

function jq(data, msg, item, $el, response, text, userHtml, selector, html, content, itemNode) {
  // tw:pos jquery
  $("#out").html(data);
  // tw:pos jquery
  $(".msg").html("<b>" + msg + "</b>");
  // tw:pos jquery
  $("#list").append("<li>" + item + "</li>");
  // tw:pos jquery
  $el.html(response.body);
  // tw:pos jquery
  jQuery("#x").prepend(`<p>${text}</p>`);
  // tw:pos jquery
  $("<div>" + userHtml + "</div>").appendTo(document.body);
  // tw:pos jquery
  $(selector).after(html);
  // tw:pos jquery
  $("#c").replaceWith(content);
  // tw:pos angular
  angular.element(document.getElementById("x")).html(content);
  // tw:neg jquery
  $("#out").text(data);
  // tw:neg jquery
  $("#out").html("<b>Loading</b>");
  // tw:neg jquery
  const current = $("#out").html();
  // tw:neg jquery
  $("#list").append(itemNode);
  // tw:neg jquery
  $("#out").html(DOMPurify.sanitize(data));
  // tw:neg jquery
  $(".x").addClass("on");
  // tw:neg jquery
  $("#list").append($("<li>").text(item));
  // $("#out").html(data);
  return current;
}
