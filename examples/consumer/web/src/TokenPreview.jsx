import React from "react";

// Shows the server-rendered token HTML in the editor preview.
export function TokenPreview({ html }) {
  return <div className="tw-preview" dangerouslySetInnerHTML={{ __html: html }} />;
}
