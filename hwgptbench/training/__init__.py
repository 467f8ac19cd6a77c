"""Our own perplexity, trained for real (docs/PROTOCOLS.md section 6): the corpus (`corpus`,
`corpus_text`), what one sandwich-rule step is (`sandwich`), weight-sharing supernet training
(`supernet`), scoring sub-networks and the perplexity table (`evaluate`). torch is imported only
where a function needs it."""
