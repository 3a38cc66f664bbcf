" .rtn files are Rattan topologies (Vim and every Neovim).
autocmd BufRead,BufNewFile *.rtn setfiletype rattan
