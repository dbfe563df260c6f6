FROM scratch
ADD http://127.0.0.1:18777/slow /slow
