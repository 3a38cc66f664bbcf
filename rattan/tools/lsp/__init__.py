"""The language server (`rattan lsp`): `analysis` answers an editor's questions about one
document; `server` speaks the protocol on stdio."""
