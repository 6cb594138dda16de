import orjson


def test_track_is_stored(client, basic_auth):
    response = client.post(
        "/v1/track",
        orjson.dumps({"userId": "u1", "event": "Product Viewed", "messageId": "m1"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth,
    )
    assert response.status_code == 200
    assert response.json() == {"success": True}
