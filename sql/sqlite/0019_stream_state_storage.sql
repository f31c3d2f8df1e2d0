-- PostgreSQL's 0019 chooses how a stream's state is compressed; SQLite stores blobs as they are, so nothing
-- changes here (the number is kept in step on both engines).
SELECT 1;
