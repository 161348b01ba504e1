import { Component, SecurityContext } from "@angular/core";
import { DomSanitizer, SafeHtml } from "@angular/platform-browser";
import DOMPurify from "dompurify";

@Component({
  selector: "app-post",
  // tw:pos angular
  template: '<div [innerHTML]="content"></div>',
})
export class PostComponent {
  trusted: SafeHtml | null = null;

  constructor(private sanitizer: DomSanitizer) {}

  show(html: string, code: string, link: string, raw: string): void {
    // tw:pos angular
    this.trusted = this.sanitizer.bypassSecurityTrustHtml(html);
    // tw:pos angular
    const script = this.sanitizer.bypassSecurityTrustScript(code);
    // tw:pos angular
    const url = this.sanitizer.bypassSecurityTrustResourceUrl(link);
    // tw:neg angular
    const fixed = this.sanitizer.bypassSecurityTrustHtml("<b>ok</b>");
    // tw:neg angular
    const safe = this.sanitizer.sanitize(SecurityContext.HTML, html);
    // tw:neg angular
    const cleaned = this.sanitizer.bypassSecurityTrustHtml(DOMPurify.sanitize(raw));
    // bypassSecurityTrustHtml(html) in a comment
    console.log(script, url, fixed, safe, cleaned);
  }
}

@Component({
  selector: "app-text",
  // tw:neg angular
  template: '<div [innerText]="content"></div>',
})
export class TextComponent {}
