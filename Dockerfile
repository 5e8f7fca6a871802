# One image for every process; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --create-home bot && mkdir -p var && chown -R bot var
USER bot
EXPOSE 8000 8601
CMD ["daphne", "--bind", "0.0.0.0", "--port", "8000", "controlpanel.asgi:application"]
